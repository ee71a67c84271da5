"""The institution-side SDK: talks to the gateway only over HTTP (never imports it)."""
