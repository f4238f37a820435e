"""analysis/torch"""
