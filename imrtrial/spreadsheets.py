"""Text bound for a spreadsheet (every CSV the site writes: exports, reports)."""

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text):
    """Text a spreadsheet shows as text: a leading formula character is quoted with '."""
    return "'" + text if text.startswith(FORMULA_START) else text
