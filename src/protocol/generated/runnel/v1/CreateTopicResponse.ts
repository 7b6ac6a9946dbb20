// Original file: proto/runnel/v1/admin.proto

import type { TopicDescription as _runnel_v1_TopicDescription, TopicDescription__Output as _runnel_v1_TopicDescription__Output } from '../../runnel/v1/TopicDescription.js';

export interface CreateTopicResponse {
  'topic'?: (_runnel_v1_TopicDescription | null);
}

export interface CreateTopicResponse__Output {
  'topic': (_runnel_v1_TopicDescription__Output | null);
}
