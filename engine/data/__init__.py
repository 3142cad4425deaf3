"""Reading the user's data: robust image decoding, dataset layouts, the data doctor."""
