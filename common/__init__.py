"""What the engine, the app and the command line all need, in the standard library only: the event
schema, each option's choices, the LR rule and plan, metrics, the COCO document, the bundled samples."""
