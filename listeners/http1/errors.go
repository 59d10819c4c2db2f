package http1

// errCode names one way a message can be malformed. The parsers return codes
// internally and map them to preallocated *ParseError values, so rejecting a
// hostile message costs no allocation either.
type errCode uint8

const (
	errNone errCode = iota
	errHeadTooLarge
	errTooManyFields
	errRequestLineTooLong
	errTooManyEmptyLines
	errBareCR
	errObsFold
	errEmptyFieldName
	errSpaceBeforeColon
	errFieldNameChar
	errMissingColon
	errFieldValueChar
	errRequestLineParts
	errMethodChar
	errTargetChar
	errTargetPercent
	errTargetForm
	errAsteriskNotOptions
	errConnectTarget
	errAbsoluteScheme
	errAbsoluteAuthority
	errVersionSyntax
	errVersionUnsupported
	errMissingHost
	errMultipleHost
	errInvalidHost
	errContentLengthSyntax
	errContentLengthMismatch
	errTEAndContentLength
	errTEInHTTP10
	errTESyntax
	errTEChunkedNotFinal
	errTEChunkedTwice
	errTEUnknownCoding
	errStatusLine
	errStatusCode
	errReasonChar
	numErrCodes
)

// errInfo is the reason text of a code and the status a server answers a
// request with when it sees it. Response problems are always 502: the proxy
// cannot forward a response it cannot frame.
var errInfo = [numErrCodes]struct {
	status int
	reason string
}{
	errHeadTooLarge:          {431, "message head too large"},
	errTooManyFields:         {431, "too many header fields"},
	errRequestLineTooLong:    {414, "request-line too long"},
	errTooManyEmptyLines:     {400, "too many empty lines before the start-line"},
	errBareCR:                {400, "bare CR in message head"},
	errObsFold:               {400, "obsolete line folding or whitespace before a field line"},
	errEmptyFieldName:        {400, "empty field name"},
	errSpaceBeforeColon:      {400, "whitespace between field name and colon"},
	errFieldNameChar:         {400, "invalid character in field name"},
	errMissingColon:          {400, "field line without colon"},
	errFieldValueChar:        {400, "invalid character in field value"},
	errRequestLineParts:      {400, "request-line is not method SP request-target SP HTTP-version"},
	errMethodChar:            {400, "invalid method"},
	errTargetChar:            {400, "invalid character in request-target"},
	errTargetPercent:         {400, "invalid percent-encoding in request-target path"},
	errTargetForm:            {400, "request-target is not in origin-form or absolute-form"},
	errAsteriskNotOptions:    {400, "asterisk-form request-target is only valid for OPTIONS"},
	errConnectTarget:         {400, "CONNECT needs an authority-form request-target (host:port)"},
	errAbsoluteScheme:        {400, "absolute-form request-target must use the http or https scheme"},
	errAbsoluteAuthority:     {400, "invalid authority in absolute-form request-target"},
	errVersionSyntax:         {400, "malformed HTTP-version"},
	errVersionUnsupported:    {505, "HTTP version not supported"},
	errMissingHost:           {400, "HTTP/1.1 request without Host"},
	errMultipleHost:          {400, "more than one Host field"},
	errInvalidHost:           {400, "invalid Host field value"},
	errContentLengthSyntax:   {400, "invalid Content-Length"},
	errContentLengthMismatch: {400, "conflicting Content-Length values"},
	errTEAndContentLength:    {400, "both Transfer-Encoding and Content-Length"},
	errTEInHTTP10:            {400, "Transfer-Encoding in an HTTP/1.0 message"},
	errTESyntax:              {400, "malformed Transfer-Encoding"},
	errTEChunkedNotFinal:     {400, "chunked is not the final transfer coding"},
	errTEChunkedTwice:        {400, "chunked applied more than once"},
	errTEUnknownCoding:       {501, "unknown transfer coding"},
	errStatusLine:            {502, "malformed status-line"},
	errStatusCode:            {502, "invalid status code"},
	errReasonChar:            {502, "invalid character in reason-phrase"},
}

// parseErrors holds one immutable *ParseError per code for requests
// (index 0) and responses (index 1); built once, never written.
var parseErrors = buildParseErrors()

func buildParseErrors() (t [2][numErrCodes]*ParseError) {
	for code := errCode(1); code < numErrCodes; code++ {
		info := errInfo[code]
		t[0][code] = &ParseError{Status: info.status, Reason: info.reason}
		t[1][code] = &ParseError{Status: 502, Reason: "response: " + info.reason}
	}
	return t
}

func requestError(code errCode) error  { return parseErrors[0][code] }
func responseError(code errCode) error { return parseErrors[1][code] }
