"""What every use case answers with: the Reply to an event, threads of the outbox, and views of stored rows for cards."""
