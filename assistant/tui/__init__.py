"""The Textual app: chat, mail and models screens. Screens start workers; workers call services."""
