"""The kernel: what every other package shares and nothing here imports from them.

Configuration models and loading, the clock, POS and chat event types, the router of chat commands and
card actions, the Messenger protocol, the step catalogue and ``RetryLater``, the rule language's facts
and checks, and the signatures of webhooks.
"""
