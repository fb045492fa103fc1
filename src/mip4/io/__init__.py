"""mip4.io"""
