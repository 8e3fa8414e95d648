"""The spaCy layer: the CAMeL Tools tokenizer, the ``aner_lstm`` component and :func:`load`."""
