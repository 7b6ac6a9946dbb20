// Original file: proto/runnel/v1/log.proto

import type { Record as _runnel_v1_Record, Record__Output as _runnel_v1_Record__Output } from '../../runnel/v1/Record.js';

export interface Records {
  'records'?: (_runnel_v1_Record)[];
}

export interface Records__Output {
  'records': (_runnel_v1_Record__Output)[];
}
