"""Services that run inside a cluster's nodes beside the failover daemon."""
