// Original file: proto/runnel/v1/admin.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AddPartitionsRequest as _runnel_v1_AddPartitionsRequest, AddPartitionsRequest__Output as _runnel_v1_AddPartitionsRequest__Output } from '../../runnel/v1/AddPartitionsRequest.js';
import type { AlterTopicConfigsRequest as _runnel_v1_AlterTopicConfigsRequest, AlterTopicConfigsRequest__Output as _runnel_v1_AlterTopicConfigsRequest__Output } from '../../runnel/v1/AlterTopicConfigsRequest.js';
import type { CreateTopicRequest as _runnel_v1_CreateTopicRequest, CreateTopicRequest__Output as _runnel_v1_CreateTopicRequest__Output } from '../../runnel/v1/CreateTopicRequest.js';
import type { CreateTopicResponse as _runnel_v1_CreateTopicResponse, CreateTopicResponse__Output as _runnel_v1_CreateTopicResponse__Output } from '../../runnel/v1/CreateTopicResponse.js';
import type { DeleteTopicRequest as _runnel_v1_DeleteTopicRequest, DeleteTopicRequest__Output as _runnel_v1_DeleteTopicRequest__Output } from '../../runnel/v1/DeleteTopicRequest.js';
import type { DeleteTopicResponse as _runnel_v1_DeleteTopicResponse, DeleteTopicResponse__Output as _runnel_v1_DeleteTopicResponse__Output } from '../../runnel/v1/DeleteTopicResponse.js';
import type { DescribeTopicRequest as _runnel_v1_DescribeTopicRequest, DescribeTopicRequest__Output as _runnel_v1_DescribeTopicRequest__Output } from '../../runnel/v1/DescribeTopicRequest.js';
import type { GetMetadataRequest as _runnel_v1_GetMetadataRequest, GetMetadataRequest__Output as _runnel_v1_GetMetadataRequest__Output } from '../../runnel/v1/GetMetadataRequest.js';
import type { ListTopicsRequest as _runnel_v1_ListTopicsRequest, ListTopicsRequest__Output as _runnel_v1_ListTopicsRequest__Output } from '../../runnel/v1/ListTopicsRequest.js';
import type { ListTopicsResponse as _runnel_v1_ListTopicsResponse, ListTopicsResponse__Output as _runnel_v1_ListTopicsResponse__Output } from '../../runnel/v1/ListTopicsResponse.js';
import type { Metadata as _runnel_v1_Metadata, Metadata__Output as _runnel_v1_Metadata__Output } from '../../runnel/v1/Metadata.js';
import type { TopicDescription as _runnel_v1_TopicDescription, TopicDescription__Output as _runnel_v1_TopicDescription__Output } from '../../runnel/v1/TopicDescription.js';

export interface AdminServiceClient extends grpc.Client {
  /**
   * Grows a topic to `partition_count` partitions (never shrinks).
   */
  AddPartitions(argument: _runnel_v1_AddPartitionsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  AddPartitions(argument: _runnel_v1_AddPartitionsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  AddPartitions(argument: _runnel_v1_AddPartitionsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  AddPartitions(argument: _runnel_v1_AddPartitionsRequest, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  /**
   * Grows a topic to `partition_count` partitions (never shrinks).
   */
  addPartitions(argument: _runnel_v1_AddPartitionsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  addPartitions(argument: _runnel_v1_AddPartitionsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  addPartitions(argument: _runnel_v1_AddPartitionsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  addPartitions(argument: _runnel_v1_AddPartitionsRequest, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  
  /**
   * Sets and removes per-topic config overrides.
   */
  AlterTopicConfigs(argument: _runnel_v1_AlterTopicConfigsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  AlterTopicConfigs(argument: _runnel_v1_AlterTopicConfigsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  AlterTopicConfigs(argument: _runnel_v1_AlterTopicConfigsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  AlterTopicConfigs(argument: _runnel_v1_AlterTopicConfigsRequest, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  /**
   * Sets and removes per-topic config overrides.
   */
  alterTopicConfigs(argument: _runnel_v1_AlterTopicConfigsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  alterTopicConfigs(argument: _runnel_v1_AlterTopicConfigsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  alterTopicConfigs(argument: _runnel_v1_AlterTopicConfigsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  alterTopicConfigs(argument: _runnel_v1_AlterTopicConfigsRequest, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  
  /**
   * Creates a topic. Configs use Kafka's names (retention.ms, segment.bytes, …) plus
   * `flush` = always | interval:<ms> | never. Fails ALREADY_EXISTS (reason TOPIC_ALREADY_EXISTS).
   */
  CreateTopic(argument: _runnel_v1_CreateTopicRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_CreateTopicResponse__Output>): grpc.ClientUnaryCall;
  CreateTopic(argument: _runnel_v1_CreateTopicRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_CreateTopicResponse__Output>): grpc.ClientUnaryCall;
  CreateTopic(argument: _runnel_v1_CreateTopicRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_CreateTopicResponse__Output>): grpc.ClientUnaryCall;
  CreateTopic(argument: _runnel_v1_CreateTopicRequest, callback: grpc.requestCallback<_runnel_v1_CreateTopicResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Creates a topic. Configs use Kafka's names (retention.ms, segment.bytes, …) plus
   * `flush` = always | interval:<ms> | never. Fails ALREADY_EXISTS (reason TOPIC_ALREADY_EXISTS).
   */
  createTopic(argument: _runnel_v1_CreateTopicRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_CreateTopicResponse__Output>): grpc.ClientUnaryCall;
  createTopic(argument: _runnel_v1_CreateTopicRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_CreateTopicResponse__Output>): grpc.ClientUnaryCall;
  createTopic(argument: _runnel_v1_CreateTopicRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_CreateTopicResponse__Output>): grpc.ClientUnaryCall;
  createTopic(argument: _runnel_v1_CreateTopicRequest, callback: grpc.requestCallback<_runnel_v1_CreateTopicResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Deletes a topic and its files. The topic is gone for clients (TOPIC_NOT_FOUND) once the
   * delete has marked it, before any file is removed; a delete that fails after that
   * (DISK_FULL, STORAGE_ERROR) is finished by sending it again, by a CreateTopic of the name,
   * or at the broker's next start.
   */
  DeleteTopic(argument: _runnel_v1_DeleteTopicRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_DeleteTopicResponse__Output>): grpc.ClientUnaryCall;
  DeleteTopic(argument: _runnel_v1_DeleteTopicRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_DeleteTopicResponse__Output>): grpc.ClientUnaryCall;
  DeleteTopic(argument: _runnel_v1_DeleteTopicRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_DeleteTopicResponse__Output>): grpc.ClientUnaryCall;
  DeleteTopic(argument: _runnel_v1_DeleteTopicRequest, callback: grpc.requestCallback<_runnel_v1_DeleteTopicResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Deletes a topic and its files. The topic is gone for clients (TOPIC_NOT_FOUND) once the
   * delete has marked it, before any file is removed; a delete that fails after that
   * (DISK_FULL, STORAGE_ERROR) is finished by sending it again, by a CreateTopic of the name,
   * or at the broker's next start.
   */
  deleteTopic(argument: _runnel_v1_DeleteTopicRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_DeleteTopicResponse__Output>): grpc.ClientUnaryCall;
  deleteTopic(argument: _runnel_v1_DeleteTopicRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_DeleteTopicResponse__Output>): grpc.ClientUnaryCall;
  deleteTopic(argument: _runnel_v1_DeleteTopicRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_DeleteTopicResponse__Output>): grpc.ClientUnaryCall;
  deleteTopic(argument: _runnel_v1_DeleteTopicRequest, callback: grpc.requestCallback<_runnel_v1_DeleteTopicResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Partitions with leader, replicas, ISR, start/end offsets and bytes; effective configs.
   */
  DescribeTopic(argument: _runnel_v1_DescribeTopicRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  DescribeTopic(argument: _runnel_v1_DescribeTopicRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  DescribeTopic(argument: _runnel_v1_DescribeTopicRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  DescribeTopic(argument: _runnel_v1_DescribeTopicRequest, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  /**
   * Partitions with leader, replicas, ISR, start/end offsets and bytes; effective configs.
   */
  describeTopic(argument: _runnel_v1_DescribeTopicRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  describeTopic(argument: _runnel_v1_DescribeTopicRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  describeTopic(argument: _runnel_v1_DescribeTopicRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  describeTopic(argument: _runnel_v1_DescribeTopicRequest, callback: grpc.requestCallback<_runnel_v1_TopicDescription__Output>): grpc.ClientUnaryCall;
  
  /**
   * Brokers and, for the asked topics (all when empty), partition counts and leaders.
   */
  GetMetadata(argument: _runnel_v1_GetMetadataRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_Metadata__Output>): grpc.ClientUnaryCall;
  GetMetadata(argument: _runnel_v1_GetMetadataRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_Metadata__Output>): grpc.ClientUnaryCall;
  GetMetadata(argument: _runnel_v1_GetMetadataRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_Metadata__Output>): grpc.ClientUnaryCall;
  GetMetadata(argument: _runnel_v1_GetMetadataRequest, callback: grpc.requestCallback<_runnel_v1_Metadata__Output>): grpc.ClientUnaryCall;
  /**
   * Brokers and, for the asked topics (all when empty), partition counts and leaders.
   */
  getMetadata(argument: _runnel_v1_GetMetadataRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_Metadata__Output>): grpc.ClientUnaryCall;
  getMetadata(argument: _runnel_v1_GetMetadataRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_Metadata__Output>): grpc.ClientUnaryCall;
  getMetadata(argument: _runnel_v1_GetMetadataRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_Metadata__Output>): grpc.ClientUnaryCall;
  getMetadata(argument: _runnel_v1_GetMetadataRequest, callback: grpc.requestCallback<_runnel_v1_Metadata__Output>): grpc.ClientUnaryCall;
  
  ListTopics(argument: _runnel_v1_ListTopicsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ListTopicsResponse__Output>): grpc.ClientUnaryCall;
  ListTopics(argument: _runnel_v1_ListTopicsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_ListTopicsResponse__Output>): grpc.ClientUnaryCall;
  ListTopics(argument: _runnel_v1_ListTopicsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ListTopicsResponse__Output>): grpc.ClientUnaryCall;
  ListTopics(argument: _runnel_v1_ListTopicsRequest, callback: grpc.requestCallback<_runnel_v1_ListTopicsResponse__Output>): grpc.ClientUnaryCall;
  listTopics(argument: _runnel_v1_ListTopicsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ListTopicsResponse__Output>): grpc.ClientUnaryCall;
  listTopics(argument: _runnel_v1_ListTopicsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_ListTopicsResponse__Output>): grpc.ClientUnaryCall;
  listTopics(argument: _runnel_v1_ListTopicsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ListTopicsResponse__Output>): grpc.ClientUnaryCall;
  listTopics(argument: _runnel_v1_ListTopicsRequest, callback: grpc.requestCallback<_runnel_v1_ListTopicsResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface AdminServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Grows a topic to `partition_count` partitions (never shrinks).
   */
  AddPartitions: grpc.handleUnaryCall<_runnel_v1_AddPartitionsRequest__Output, _runnel_v1_TopicDescription>;
  
  /**
   * Sets and removes per-topic config overrides.
   */
  AlterTopicConfigs: grpc.handleUnaryCall<_runnel_v1_AlterTopicConfigsRequest__Output, _runnel_v1_TopicDescription>;
  
  /**
   * Creates a topic. Configs use Kafka's names (retention.ms, segment.bytes, …) plus
   * `flush` = always | interval:<ms> | never. Fails ALREADY_EXISTS (reason TOPIC_ALREADY_EXISTS).
   */
  CreateTopic: grpc.handleUnaryCall<_runnel_v1_CreateTopicRequest__Output, _runnel_v1_CreateTopicResponse>;
  
  /**
   * Deletes a topic and its files. The topic is gone for clients (TOPIC_NOT_FOUND) once the
   * delete has marked it, before any file is removed; a delete that fails after that
   * (DISK_FULL, STORAGE_ERROR) is finished by sending it again, by a CreateTopic of the name,
   * or at the broker's next start.
   */
  DeleteTopic: grpc.handleUnaryCall<_runnel_v1_DeleteTopicRequest__Output, _runnel_v1_DeleteTopicResponse>;
  
  /**
   * Partitions with leader, replicas, ISR, start/end offsets and bytes; effective configs.
   */
  DescribeTopic: grpc.handleUnaryCall<_runnel_v1_DescribeTopicRequest__Output, _runnel_v1_TopicDescription>;
  
  /**
   * Brokers and, for the asked topics (all when empty), partition counts and leaders.
   */
  GetMetadata: grpc.handleUnaryCall<_runnel_v1_GetMetadataRequest__Output, _runnel_v1_Metadata>;
  
  ListTopics: grpc.handleUnaryCall<_runnel_v1_ListTopicsRequest__Output, _runnel_v1_ListTopicsResponse>;
  
}

export interface AdminServiceDefinition extends grpc.ServiceDefinition {
  AddPartitions: MethodDefinition<_runnel_v1_AddPartitionsRequest, _runnel_v1_TopicDescription, _runnel_v1_AddPartitionsRequest__Output, _runnel_v1_TopicDescription__Output>
  AlterTopicConfigs: MethodDefinition<_runnel_v1_AlterTopicConfigsRequest, _runnel_v1_TopicDescription, _runnel_v1_AlterTopicConfigsRequest__Output, _runnel_v1_TopicDescription__Output>
  CreateTopic: MethodDefinition<_runnel_v1_CreateTopicRequest, _runnel_v1_CreateTopicResponse, _runnel_v1_CreateTopicRequest__Output, _runnel_v1_CreateTopicResponse__Output>
  DeleteTopic: MethodDefinition<_runnel_v1_DeleteTopicRequest, _runnel_v1_DeleteTopicResponse, _runnel_v1_DeleteTopicRequest__Output, _runnel_v1_DeleteTopicResponse__Output>
  DescribeTopic: MethodDefinition<_runnel_v1_DescribeTopicRequest, _runnel_v1_TopicDescription, _runnel_v1_DescribeTopicRequest__Output, _runnel_v1_TopicDescription__Output>
  GetMetadata: MethodDefinition<_runnel_v1_GetMetadataRequest, _runnel_v1_Metadata, _runnel_v1_GetMetadataRequest__Output, _runnel_v1_Metadata__Output>
  ListTopics: MethodDefinition<_runnel_v1_ListTopicsRequest, _runnel_v1_ListTopicsResponse, _runnel_v1_ListTopicsRequest__Output, _runnel_v1_ListTopicsResponse__Output>
}
