"""The exchange: a consumer's query, decided, audited, streamed, and receipted."""
