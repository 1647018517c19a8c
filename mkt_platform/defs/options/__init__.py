"""UTC-daily marts built by dbt: the Deribit options marts and the funding marts."""
