"""Scorecards: the data behind a vendor card, its charts, and the HTML/CSV/JSON renderings."""
