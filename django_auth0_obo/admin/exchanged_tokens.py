"""Admin for the exchanged-token cache (ExchangedToken)."""
