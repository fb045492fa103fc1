"""mip4.dataplane"""
