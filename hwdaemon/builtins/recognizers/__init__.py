"""Built-in recognizers: `easyocr` (easyocr.py) and `handwriting` (handwriting.py, with its model, beam search and character language model)."""
