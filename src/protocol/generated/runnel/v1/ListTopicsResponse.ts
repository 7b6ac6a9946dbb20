// Original file: proto/runnel/v1/admin.proto

import type { TopicSummary as _runnel_v1_TopicSummary, TopicSummary__Output as _runnel_v1_TopicSummary__Output } from '../../runnel/v1/TopicSummary.js';

export interface ListTopicsResponse {
  'topics'?: (_runnel_v1_TopicSummary)[];
}

export interface ListTopicsResponse__Output {
  'topics': (_runnel_v1_TopicSummary__Output)[];
}
