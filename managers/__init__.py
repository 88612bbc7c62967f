"""The business: use cases that own their transactions. Called by the HTTP layers, never by the layers below."""
