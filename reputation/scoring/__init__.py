"""The scoring job (sentiment into review_sentiment) and model evaluation on labelled files."""
