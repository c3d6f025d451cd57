"""Scorecards and the overview: the data behind each vendor card and the ranking page, their charts,
and the HTML/CSV/JSON renderings."""
