"""The maths: vocabulary, projector, activation, decoder and the `TopicModel` estimator.

Everything serving needs and nothing more; it imports no training, data-reading or research
module until a call asks for one (`TopicModel.fit` imports `topicproj.models.training`).
"""
