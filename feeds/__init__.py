"""Payment-processor feeds: a processor's own webhook events mapped to our transactions and fraud reports.

Pure functions (an event dict and the business configuration in, a mapping out): no Flask, no
database. ``bot/http/feeds.py`` checks signatures and ``handlers/pipeline/feeds.py`` stores the result
through the same intake as the POS webhook.
"""
