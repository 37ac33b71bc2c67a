"""Chat and buttons: the stored Webex event handled once, commands, card actions, threads, listings, delivery."""
