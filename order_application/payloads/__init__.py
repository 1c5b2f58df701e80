"""Payloads and who may read them: converter, interceptor, codec, codec server and its auth."""
