"""smsgw: market prices, buyer standards and group orders for farmers on basic phones."""
from smsgw.app import create_app

__all__ = ["create_app"]
