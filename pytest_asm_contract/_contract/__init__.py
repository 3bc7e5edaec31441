"""The contract: the port's models, errors, store and hook Protocols, input checks, rules."""
