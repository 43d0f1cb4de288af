// 8x8 registered signed multiplier: the positive control (a $mul cell, a DSP block).
module mult8 (
    input wire clk,
    input wire signed [7:0] a,
    input wire signed [7:0] b,
    output reg signed [15:0] y
);
    reg signed [7:0] ra, rb;
    always @(posedge clk) begin
        ra <= a;
        rb <= b;
        y <= ra * rb;
    end
endmodule
