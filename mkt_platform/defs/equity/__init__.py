"""US equity marts (the NYSE trading-day partitions): sessions of SPY from Polygon's bars."""
