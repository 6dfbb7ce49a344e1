"""One module per task: how its prepared data becomes batches, logits and predictions."""
