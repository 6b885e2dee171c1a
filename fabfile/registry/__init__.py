"""The registry v2 client and image copy engine (httpx), and the registry config helpers.

Modules: reference (image names), manifest (media types, exact bytes), auth (basic and bearer),
client (RegistryClient), blobs (streaming verification), copy (copy_images), bundle (OCI layouts),
upkeep (inspect, delete, untag), tunnel and forwarding (reaching a registry over SSH).
"""
