"""The engine: pollers (feed → ledger + outbox), the outbox relay, appliers (snapshot +
ledger → missing actions on the node's own system), and the reconciler."""
