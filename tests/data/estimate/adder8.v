// 8-bit registered adder: the negative control (no multiplier cells, no DSP).
module adder8 (
    input wire clk,
    input wire [7:0] a,
    input wire [7:0] b,
    output reg [8:0] y
);
    reg [7:0] ra, rb;
    always @(posedge clk) begin
        ra <= a;
        rb <= b;
        y <= ra + rb;
    end
endmodule
