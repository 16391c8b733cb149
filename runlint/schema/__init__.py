"""The one home of every name a run directory holds: tables, columns, metadata, file layout."""
