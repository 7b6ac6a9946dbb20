// Original file: proto/runnel/v1/admin.proto


export interface ListTopicsRequest {
}

export interface ListTopicsRequest__Output {
}
