"""The read side: turn a query, a paper or a set of papers into ranked hits."""
