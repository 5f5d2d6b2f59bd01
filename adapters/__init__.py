"""focalspec.adapters"""
