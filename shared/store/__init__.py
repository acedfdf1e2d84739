"""The store: the database handle, models, migrations, the change feed, pagination, the commit watch."""
