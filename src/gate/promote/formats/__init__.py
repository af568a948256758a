"""One module per GitOps file format that ``gate promote`` can write an image into.

Each format finds its nodes with ruamel.yaml's round-trip loader and returns ``Splice`` edits on the
original text (``yamltext``); ``gate.promote.edit`` applies them. Nothing is ever re-dumped, so every
byte outside the image values stays as the author wrote it.
"""
