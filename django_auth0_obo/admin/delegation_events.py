"""Admin for the delegation audit trail (DelegationEvent)."""
