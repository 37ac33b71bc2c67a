"""The checkout pipeline: a transaction in, triage, pictures, analysis, rules, the alert card; the processor feeds and the entrance watch."""
