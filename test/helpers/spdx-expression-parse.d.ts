// Types for spdx-expression-parse (it ships none): parse an SPDX licence expression or throw.
declare module 'spdx-expression-parse' {
  function parse(expression: string): unknown;
  export default parse;
}
