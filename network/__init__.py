"""The local Fabric network: topology, configuration generation and process supervision."""
