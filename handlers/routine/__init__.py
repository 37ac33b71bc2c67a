"""Reports and routine: the daily digest, the weekly pattern report, charts, retention purges."""
