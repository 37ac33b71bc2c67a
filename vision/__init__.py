"""What the cameras see: the Meraki client, recognition backends and product reconciliation.
Never imports storage or handlers."""
