"""analysis/onnx"""
