"""fraud-loss-prevention: a Webex bot that watches the checkout for fraud."""
