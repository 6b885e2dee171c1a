"""Deploying the registry on its host: settings, TLS material, htpasswd and the container."""
