"""Roll-ups: attribution, syndicated copies, statistics and the SQL views analysts open."""
