"""Linear: the local cache of its projects and issues, and the installation's OAuth connection."""
