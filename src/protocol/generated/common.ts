import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Error as _runnel_v1_Error, Error__Output as _runnel_v1_Error__Output } from './runnel/v1/Error.js';
import type { Header as _runnel_v1_Header, Header__Output as _runnel_v1_Header__Output } from './runnel/v1/Header.js';
import type { Record as _runnel_v1_Record, Record__Output as _runnel_v1_Record__Output } from './runnel/v1/Record.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  runnel: {
    v1: {
      Error: MessageTypeDefinition<_runnel_v1_Error, _runnel_v1_Error__Output>
      Header: MessageTypeDefinition<_runnel_v1_Header, _runnel_v1_Header__Output>
      Record: MessageTypeDefinition<_runnel_v1_Record, _runnel_v1_Record__Output>
      RecordFormat: EnumTypeDefinition
    }
  }
}

