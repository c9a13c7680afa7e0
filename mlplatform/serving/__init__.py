"""Model serving: the registry's champion (and canary) behind MLflow's scoring protocol."""
